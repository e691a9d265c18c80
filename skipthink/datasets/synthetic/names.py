"""First names for the synthetic generators.

The real coin-flip and last-letter questions draw from ~2,000 US first names (some accented,
some two-word like "Juan Pablo", some initials like "Tj"); a large list here keeps a student
from memorising names instead of learning the procedure. Split by gender only so MultiArith-style
stories can use the right pronoun.
"""

_FEMALE = tuple(
    """
    Aaliyah Abby Abigail Ada Adela Adriana Agnes Aida Aileen Aisha Alana Alba Alejandra Alexa
    Alexia Alice Alicia Alina Alison Allie Alma Alondra Amanda Amber Amelia Amy Ana Andrea Angela
    Angelina Anita Ann Anna Annie Antonia April Aracely Ariana Ashley Aubrey Audrey Ava Barbara
    Beatrice Becky Belinda Bella Bernice Beth Betty Bianca Bonnie Brenda Briana Bridget Brittany
    Brooke Caitlin Camila Candace Carla Carmen Carol Carolina Caroline Cassandra Catalina Cecilia
    Celeste Chanel Charity Charlotte Chelsea Cheryl Chloe Cindy Claire Clara Claudia Colleen
    Courtney Crystal Cynthia Daisy Dalia Dana Daniela Daphne Dawn Debbie Debby Delia Delores
    Denise Destiny Diana Dina Dolores Donna Dora Doris Dorothy Edith Elaine Elena Elise Eliza
    Ella Ellen Eloise Elsa Emily Emma Erica Erika Erin Esther Eva Evelyn Faith Fatima Fiona
    Flora Frances Gabriela Gail Gemma Georgina Gina Ginger Gladys Gloria Grace Greta Gwen Hailey
    Hannah Harriet Hazel Heather Heidi Helen Holly Ida Imani Ingrid Irene Iris Isabel Isabella
    Ivy Jackie Jade Jane Janet Janice Jasmine Jenna Jenny Jessica Jill Joan Joanna Jocelyn
    Josefina Joy Judith Julia Julie June Karen Karina Kate Katie Kayla Kelly Kendra Kiara
    Kimberly Kristen Laura Lauren Layla Leah Leila Lena Lilian Lillian Lily Linda Lisa Lola
    Lorena Lori Louise Lucia Lucy Luisa Luz Lydia Mabel Madison Maggie Mandy Marcia Margaret
    Maria Marian Marisol Marissa Martha Mary Maxine Maya Megan Melanie Melinda Melissa Mia
    Michelle Mikayla Mildred Mireya Miriam Molly Monica Myra Nadia Nancy Naomi Natalie Nicole
    Nina Noemi Nora Olivia Paige Paola Patricia Paula Pearl Penny Phoebe Priya Rachel Raquel
    Rebecca Regina Renee Rita Roberta Robin Rosa Rose Rosie Ruby Ruth Sabrina Sally Samantha
    Sandra Sara Sarah Selena Serena Sharon Sheila Shirley Silvia Sofia Sonia Stella Stephanie
    Sue Susan Sylvia Tamara Tanya Tara Tatyana Teresa Tiffany Tina Tracy Uma Ursula Valerie
    Vanessa Vera Veronica Victoria Violet Virginia Vivian Wanda Wendy Whitney Yasmin Yolanda
    Yvonne Zoe Zoey Cecy Lupe Rossy Nelly María Mónica Sofía Lucía Inés Mary_Ann Ana_Maria
    Maria_Elena
    """.split()
)

_MALE = tuple(
    """
    Aaron Abdi Abe Abel Abraham Adam Adrian Ahmed Alan Albert Alberto Alejandro Alex Alfonso
    Alfred Alfredo Allan Alvin Andre Andres Andrew Andy Angel Anthony Antonio Arthur Arun Austin
    Barry Ben Benito Benjamin Bernard Bill Billy Blake Bob Brad Brady Brandon Brian Bruce Bryce
    Byron Caleb Calvin Cameron Carl Carlos Carlton Cesar Chad Charles Chase Chris Chuck Clark
    Clayton Clyde Cole Colin Connor Craig Curtis Dale Dallas Damian Dan Daniel Danny Darius
    Darryl Dave David Dean Dennis Derek Devin Dewayne Diego Dominic Don Donald Douglas Duncan
    Dustin Dwight Earl Eddie Edgar Eduardo Edward Edwin Eleazar Eli Elijah Elliott Emilio Eric
    Ernest Ethan Eugene Evan Faisal Felix Fernando Finn Francis Frank Fred Freddie Fredy Gabriel
    Gary George Gerald Gilbert Glen Gordon Graham Greg Gustavo Harold Harry Harvey Hector Henry
    Herbert Howard Hugo Ian Ira Isaac Ivan Jack Jacob Jake James Jamal Jason Javier Jeff Jeremy
    Jerry Jesse Jim Jimmy Joe Joel John Jonah Jonathan Jordan Jorge Jose Joseph Joshua Juan
    Julian Justin Karl Keith Kevin Kyle Lance Larry Lawrence Leo Leon Leonard Lester Levi Liam
    Lloyd Logan Louis Lucas Lucio Luis Luke Malcolm Manuel Marco Marcus Mario Mark Martin Marvin
    Mason Matthew Max Melvin Miguel Mike Miles Mitchell Mohammed Morgan Nathan Neil Nelson
    Nicholas Noah Norman Oliver Omar Oscar Oswaldo Owen Pablo Patrick Paul Paulo Pedro Pepe
    Percy Peter Phil Ralph Ramon Randy Raul Ray Reggie Ricardo Richard Rick Robert Roberto
    Roderick Roger Roland Ronald Ronaldo Rory Ross Roy Ruben Russell Ryan Sam Sameer Samuel
    Saul Scott Sean Sergio Seth Shawn Sheldon Simon Stan Stanley Stephen Sterling Steve Stuart
    Ted Terry Theo Thomas Tim Todd Tom Tony Travis Trey Tyler Victor Vidal Vince Walter Wayne
    Wesley William Willie Wyatt Xavier Zach Zane Héctor José Raúl Martín Ramón Jesús Andrés
    Tj Jj Kc Mj Jc Aj Jose_Luis Juan_Pablo Juan_Carlos Miguel_Angel Jose_Antonio
    """.split()
)

# "_" joins two-word names inside the word lists above.
FEMALE = tuple(n.replace("_", " ") for n in _FEMALE)
MALE = tuple(n.replace("_", " ") for n in _MALE)
ALL = tuple(sorted(set(FEMALE) | set(MALE)))
